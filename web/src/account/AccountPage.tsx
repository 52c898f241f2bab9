import { useStrings } from "../i18n";

export default function AccountPage() {
  const strings = useStrings();
  return <section><h1>{strings.account.title}</h1></section>;
}
