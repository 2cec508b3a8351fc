import { LabelList } from '../../components/art-LabelList';
import { messages } from '../../lib/i18n';
import { useSession } from '../../lib/session';

const t = messages({
  en: { title: 'Labels', intro: 'Global labels: any artifact in any project can carry them.' },
  zh: { title: '标签', intro: '全局标签：任何项目中的制品都可以添加。' },
});

export function GlobalLabels() {
  const { user } = useSession();
  return (
    <section>
      <h1>{t('title')}</h1>
      <p class="muted">{t('intro')}</p>
      <LabelList scope="g" canEdit={!!user?.sysadmin_flag} />
    </section>
  );
}
